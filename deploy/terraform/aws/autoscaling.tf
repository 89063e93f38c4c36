# The model service scales on its queue: each task publishes
# vllm:num_requests_waiting; CloudWatch receives it through the CloudWatch
# agent's Prometheus scraping as the metric below (namespace LLMO).
resource "aws_appautoscaling_target" "model" {
  service_namespace  = "ecs"
  resource_id        = "service/${aws_ecs_cluster.main.name}/${aws_ecs_service.model.name}"
  scalable_dimension = "ecs:service:DesiredCount"
  min_capacity       = var.model_min_count
  max_capacity       = var.model_max_count
}

resource "aws_appautoscaling_policy" "model_queue" {
  name               = "${local.name}-model-queue"
  service_namespace  = aws_appautoscaling_target.model.service_namespace
  resource_id        = aws_appautoscaling_target.model.resource_id
  scalable_dimension = aws_appautoscaling_target.model.scalable_dimension
  policy_type        = "TargetTrackingScaling"
  target_tracking_scaling_policy_configuration {
    target_value       = var.queue_target
    scale_in_cooldown  = 300
    scale_out_cooldown = 60
    customized_metric_specification {
      metric_name = "vllm_num_requests_waiting"
      namespace   = "LLMO"
      statistic   = "Average"
      dimensions {
        name  = "ClusterName"
        value = aws_ecs_cluster.main.name
      }
      dimensions {
        name  = "ServiceName"
        value = aws_ecs_service.model.name
      }
    }
  }
}
